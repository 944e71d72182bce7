"""People, accounts, surveys and answers: storing answers, sending surveys, reach, CSV reading."""
