"""charmlp-tui: the command line and the Textual app around core."""
