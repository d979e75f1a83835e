"""What a user sees: plots, the explorer widget, the remedies' views and the written report."""
