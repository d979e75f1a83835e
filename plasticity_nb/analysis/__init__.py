"""Statistics and claims, without torch: paired tests, estimates, premises, sequential designs, the claims machinery
(each study module declares its own claims; the registry is assembled from the study catalogue)."""
