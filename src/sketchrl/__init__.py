"""sketchrl: fine-tune generative sketch models with reinforcement learning on visual rewards."""

__version__ = "0.1.0"
