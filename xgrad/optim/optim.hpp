#pragma once
/// xg::optim: optimizers (SGD, RMSprop, Adam, AdamW, Adagrad, Adadelta, LBFGS), learning-rate schedulers and
/// gradient clipping, with PyTorch's names, options, defaults and update formulas.
#include "xgrad/optim/adadelta.hpp"
#include "xgrad/optim/adagrad.hpp"
#include "xgrad/optim/adam.hpp"
#include "xgrad/optim/adamw.hpp"
#include "xgrad/optim/checkpoint.hpp"
#include "xgrad/optim/clip_grad.hpp"
#include "xgrad/optim/lbfgs.hpp"
#include "xgrad/optim/lr_scheduler.hpp"
#include "xgrad/optim/optimizer.hpp"
#include "xgrad/optim/rmsprop.hpp"
#include "xgrad/optim/sgd.hpp"
