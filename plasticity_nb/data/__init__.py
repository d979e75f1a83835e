"""The datasets (CIFAR-10, CIFAR-100, SVHN): their descriptions, their copies as uint8 tensors on the device (found,
checked, split), and how the training examples are drawn."""
