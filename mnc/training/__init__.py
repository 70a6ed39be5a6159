"""The torch-free part of training: the hyper-parameter model (``options.TrainConfig``) and the
schedule of kept checkpoints, which ``mnc train --help`` reads without torch. The training
loop itself is ``mnc_backends.torch.training``."""
