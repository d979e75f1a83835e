"""Statistics and claims: paired tests, pooling, premises, sequential designs, the claims registry, the study base."""
