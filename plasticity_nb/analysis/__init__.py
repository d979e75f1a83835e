"""Statistics and claims: paired tests, premises, sequential designs, the claims registry, the study base."""
