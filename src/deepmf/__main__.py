"""``python -m deepmf`` (and ``torchrun ... -m deepmf``): the command line."""

from deepmf.cli import run

if __name__ == "__main__":
    run()
