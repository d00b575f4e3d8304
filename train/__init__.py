"""Training side of pneumoscan: fit and evaluate the Keras CNN on a workstation CPU."""
