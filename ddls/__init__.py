"""ddls: Discriminator Driven Latent Sampling for trained GANs."""
from .io.checkpoint import Model, load_model
from .sampling.driver import RunConfig, SampleResult, sample
from .sampling.energy import LatentEnergy
from .errors import DDLSError, NonFiniteEnergy
from .formats import load_any
from .sampling.samplers import Info, Sampler, State, make_sampler
from .models.wrap import wrap

__all__ = ["DDLSError", "Info", "LatentEnergy", "Model", "NonFiniteEnergy", "RunConfig", "SampleResult", "Sampler",
           "State", "load_any", "load_model", "make_sampler", "sample", "wrap"]
__version__ = "0.1.0"
