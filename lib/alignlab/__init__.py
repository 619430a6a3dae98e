"""alignlab: train small models, measure how algorithms form, rebuild the paper's figures."""

__version__ = "0.1.0"
