"""ddls: Discriminator Driven Latent Sampling for trained GANs."""
from .io.checkpoint import Model, load_model
from .sampling.driver import RunConfig, SampleResult, sample
from .sampling.energy import LatentEnergy
from .errors import DDLSError, NonFiniteEnergy
from .formats import load_any
from .formats.own import save
from .models.factory import factory
from .sampling.samplers import Info, Sampler, State, make_sampler
from .models.wrap import wrap
from .training.own import train

__all__ = ["DDLSError", "Info", "LatentEnergy", "Model", "NonFiniteEnergy", "RunConfig", "SampleResult", "Sampler",
           "State", "factory", "load_any", "load_model", "make_sampler", "sample", "save", "train", "wrap"]
__version__ = "0.1.0"
