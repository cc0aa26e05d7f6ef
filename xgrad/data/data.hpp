#pragma once
/// xg::data: the idx reader; libtorch's data API (datasets, transforms, samplers, make_data_loader);
/// the classic DataLoader with its datasets (MNIST, CSV, tensors), samplers and batch transforms.
#include "xgrad/data/batch_generator.hpp"
#include "xgrad/data/data_loader_options.hpp"
#include "xgrad/data/dataloader.hpp"
#include "xgrad/data/dataset.hpp"
#include "xgrad/data/datasets.hpp"
#include "xgrad/data/distributed_sampler.hpp"
#include "xgrad/data/example.hpp"
#include "xgrad/data/idx.hpp"
#include "xgrad/data/samplers.hpp"
#include "xgrad/data/stateless_data_loader.hpp"
#include "xgrad/data/transforms.hpp"
