#pragma once
/// xg::nn: modules defined by their forward pass, layers, losses, init, checkpoints.
/// Functional forms live in xg::nn::functional (`namespace F = xg::nn::functional;`).
#include "xgrad/nn/containers.hpp"
#include "xgrad/nn/enum.hpp"
#include "xgrad/nn/module.hpp"
#if __has_include("xgrad/nn/linear.hpp")
#include "xgrad/nn/linear.hpp"
#endif
#if __has_include("xgrad/nn/activation.hpp")
#include "xgrad/nn/activation.hpp"
#endif
#if __has_include("xgrad/nn/conv.hpp")
#include "xgrad/nn/conv.hpp"
#endif
#if __has_include("xgrad/nn/pooling.hpp")
#include "xgrad/nn/pooling.hpp"
#endif
#if __has_include("xgrad/nn/rnn.hpp")
#include "xgrad/nn/rnn.hpp"
#endif
#if __has_include("xgrad/nn/dropout.hpp")
#include "xgrad/nn/dropout.hpp"
#endif
#if __has_include("xgrad/nn/normalization.hpp")
#include "xgrad/nn/normalization.hpp"
#endif
#if __has_include("xgrad/nn/embedding.hpp")
#include "xgrad/nn/embedding.hpp"
#endif
#if __has_include("xgrad/nn/loss.hpp")
#include "xgrad/nn/loss.hpp"
#endif
#if __has_include("xgrad/nn/init.hpp")
#include "xgrad/nn/init.hpp"
#endif
#if __has_include("xgrad/nn/serialize.hpp")
#include "xgrad/nn/serialize.hpp"
#endif
#if __has_include("xgrad/nn/torch_functions.hpp")
#include "xgrad/nn/torch_functions.hpp"
#endif
