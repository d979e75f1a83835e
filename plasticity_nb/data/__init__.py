"""CIFAR-10 as uint8 tensors on the device (found, checked, split), and how the training examples are drawn."""
