"""Training side: corpus synthesis, augmentation, dataset loaders, model training."""
