"""ddls: Discriminator Driven Latent Sampling for trained GANs.

load_model reads ddls's own checkpoints; load_any reads every format ddls knows (other libraries'
included); wrap takes any generator and discriminator. sample runs Langevin chains on an energy,
run_chain one chunk of chains with a kernel of make_sampler; posthoc.run draws with any registered
post-hoc method (ddls, mala, drs, mhgan, dot, dgflow, sir). tune searches them for the recipe that beats
the generator alone (as `ddls tune`); sample(model, recipe, n) draws with it.
"""
from . import posthoc
from .io.checkpoint import Model, load_model
from .sampling.driver import RunConfig, SampleResult, run_chain
from .sampling.energy import LatentEnergy
from .errors import DDLSError, NonFiniteEnergy
from .formats import load_any
from .formats.own import save
from .models.factory import factory
from .sampling.samplers import Info, Sampler, State, make_sampler
from .models.wrap import wrap
from .training.own import train
from .tuning.search import sample, tune_model as tune

__all__ = ["DDLSError", "Info", "LatentEnergy", "Model", "NonFiniteEnergy", "RunConfig", "SampleResult", "Sampler",
           "State", "factory", "load_any", "load_model", "make_sampler", "posthoc", "run_chain", "sample", "save",
           "train", "tune", "wrap"]
__version__ = "0.1.0"
