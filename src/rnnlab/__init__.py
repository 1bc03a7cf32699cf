"""rnnlab: train and sample recurrent language models (d2l section 8.6 and beyond)."""

__version__ = "0.1.0"

from .batches import Epoch, make_epoch, random_epoch, sequential_epoch
from .checkpoint import load_run, save_run
from .compare import compare
from .config import Config, DataConfig, GenerateConfig, ModelConfig, TrainConfig
from .corpus import CORPORA, Corpus, load_corpus
from .errors import CheckpointError, ConfigError, CorpusError, RnnlabError, TrainingDiverged
from .generate import Piece, generate, predict, stream, stream_batch
from .models import (
    MODELS,
    GRUScratch,
    LSTMScratch,
    RNNModel,
    RNNScratch,
    build_model,
    detach_state,
    model_from_config,
)
from .optim import build_optimizer, build_scheduler
from .presets import PRESETS, get_preset
from .runs import Dataset, load_dataset, train_run
from .train import EpochStats, clip_gradients, select_device, train
from .vocab import Vocab

__all__ = [
    "CORPORA", "MODELS", "PRESETS", "CheckpointError", "Config", "ConfigError", "Corpus",
    "CorpusError", "DataConfig", "Dataset", "Epoch", "EpochStats", "GRUScratch", "GenerateConfig",
    "LSTMScratch", "ModelConfig", "Piece", "RNNModel", "RNNScratch", "RnnlabError", "TrainConfig",
    "TrainingDiverged", "Vocab", "build_model", "build_optimizer", "build_scheduler",
    "clip_gradients", "compare", "detach_state", "generate", "get_preset", "load_corpus",
    "load_dataset", "load_run", "make_epoch", "model_from_config", "predict", "random_epoch",
    "save_run", "select_device", "sequential_epoch", "stream", "stream_batch", "train", "train_run",
]
