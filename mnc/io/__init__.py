"""File helpers shared by every command that writes or reads user files."""
