// Attachment: what the model asks of a PEFT method while it builds itself (src/peft implements it;
// the model includes nothing of src/peft). The Transformer walks its sites in a fixed order —
// per layer the two block sites (attention, MLP) then the linears q k v o gate up down, then the
// input embeddings — and asks each attached method whether it attaches there. The method adds
// its parameters to the model's ParameterSet (canonical names, its own roles and shard specs) and
// returns the adapter that computes with them. So the parameter order, and with it the flat
// gradient layout, follows the sites.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "model/adapter.h"
#include "model/parameters.h"

namespace tailor::model {

// The input embeddings: a method may add a table of trainable rows for virtual token ids.
struct InputSite {
  std::int64_t hidden = 0;  // D
  int tp_size = 1;
};

class Attachment {
 public:
  virtual ~Attachment() = default;
  // The method's name (its peft.method), recorded on every parameter it adds
  // (Parameter::method).
  [[nodiscard]] virtual std::string_view name() const = 0;
  // Whether every base parameter is frozen (no gradient, no optimizer state) while it trains.
  [[nodiscard]] virtual bool freezes_base() const { return true; }
  // nullptr: the method does not attach at this site.
  [[nodiscard]] virtual std::unique_ptr<LinearAdapter> attach_linear(ParameterSet& params,
                                                                     const LinearSite& site) const {
    (void)params, (void)site;
    return nullptr;
  }
  [[nodiscard]] virtual std::unique_ptr<BlockAdapter> attach_block(ParameterSet& params,
                                                                   const BlockSite& site) const {
    (void)params, (void)site;
    return nullptr;
  }
  // A table [n, D] whose row k is the input embedding of virtual token id -1 - k (replicated on
  // every TP rank), or nullptr.
  [[nodiscard]] virtual Parameter* attach_input(ParameterSet& params,
                                                const InputSite& site) const {
    (void)params, (void)site;
    return nullptr;
  }
};

// Runs `attach` (one of a's attach_* calls on `params`) and records a's name on every parameter
// it added, so exports and imports find a method's tensors by owner, not by name patterns.
template <class Attach>
auto attach_owned(const Attachment& a, ParameterSet& params, Attach&& attach) {
  const std::size_t first = params.all().size();
  auto attached = attach();
  for (std::size_t i = first; i < params.all().size(); ++i)
    params.all()[i].method = std::string(a.name());
  return attached;
}

}  // namespace tailor::model
