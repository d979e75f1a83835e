"""What is measured about a network: curvature, gradient noise, the probes that run them, and the plasticity metrics."""
