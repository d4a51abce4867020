// One include for module authors.
#pragma once

#include "membrane/abi.hpp"
#include "membrane/bpf.hpp"
#include "membrane/bus.hpp"
#include "membrane/config.hpp"
#include "membrane/context.hpp"
#include "membrane/embed.hpp"
#include "membrane/events.hpp"
#include "membrane/model.hpp"
#include "membrane/module.hpp"
