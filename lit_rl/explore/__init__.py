from lit_rl.explore.noise import NOISES, GaussianNoise, OrnsteinUhlenbeckNoise

__all__ = ["NOISES", "GaussianNoise", "OrnsteinUhlenbeckNoise"]
