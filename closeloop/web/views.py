"""Pages for people. Views stay thin: they read input, call domain code, render."""
