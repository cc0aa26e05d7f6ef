#pragma once
/// xgrad: tape-based reverse-mode automatic differentiation over tensors, PyTorch-style.
/// Everything lives in namespace xg (xg::autograd, xg::nn, xg::optim, xg::data).
#include "xgrad/autograd/allocator.hpp"
#include "xgrad/autograd/array_ref.hpp"
#include "xgrad/autograd/dtype.hpp"
#include "xgrad/autograd/engine.hpp"
#include "xgrad/autograd/error.hpp"
#include "xgrad/autograd/function.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/gradcheck.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/autograd/ops.hpp"
#include "xgrad/autograd/parallel.hpp"
#include "xgrad/autograd/random.hpp"
#include "xgrad/autograd/scalar.hpp"
#include "xgrad/autograd/tensor.hpp"
#if __has_include("xgrad/nn/nn.hpp")
#include "xgrad/nn/nn.hpp"
#endif
#if __has_include("xgrad/optim/optim.hpp")
#include "xgrad/optim/optim.hpp"
#endif
#if __has_include("xgrad/data/data.hpp")
#include "xgrad/data/data.hpp"
#endif
#if __has_include("xgrad/distributed/distributed.hpp") && defined(XGRAD_HAS_MPI)
#include "xgrad/distributed/distributed.hpp"
#endif
