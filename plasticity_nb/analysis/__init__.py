"""Statistics and claims, without torch: paired tests, estimates, premises, sequential designs, the claims registry."""
