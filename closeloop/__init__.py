"""closeloop: close the loop with unhappy customers."""
