"""Models: a body that maps inputs to features and a head the trainer sizes from the loss."""
