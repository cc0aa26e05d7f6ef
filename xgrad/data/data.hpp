#pragma once
/// xg::data: idx reader, datasets (MNIST, CSV, tensors), DataLoader, samplers, transforms.
#include "xgrad/data/dataloader.hpp"
#include "xgrad/data/dataset.hpp"
#include "xgrad/data/distributed_sampler.hpp"
#include "xgrad/data/idx.hpp"
#include "xgrad/data/transforms.hpp"
