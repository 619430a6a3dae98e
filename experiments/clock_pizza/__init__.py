"""Clock vs pizza: the algorithm a one-layer transformer learns as its attention rate varies
(Zhong et al. 2023)."""
