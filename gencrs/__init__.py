"""gencrs: a generative conversational recommender."""

__version__ = "0.1.0"
