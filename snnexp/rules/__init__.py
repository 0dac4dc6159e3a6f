"""Learning rules and the plug-ins of the trainer (weight bumping, DEEP R)."""
