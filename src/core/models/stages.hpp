// One explicit table per network stage: name -> the settings it reads (with
// defaults) and a factory. Compositions (models/compositions.hpp) name one
// entry of each. Adding a tokenizer = its .hpp/.cpp pair + one line here + one
// composition row. Explicit tables, not self-registering statics: the static
// core archive would drop those.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backbone/backbone.hpp"
#include "decode/gene_decoder.hpp"
#include "exprflow/api.hpp"
#include "exprflow/options.hpp"
#include "tokenize/tokenizer.hpp"

namespace exprflow {

std::vector<std::string> tokenizer_names();
std::vector<std::string> backbone_names();
std::vector<std::string> decoder_names();

Options tokenizer_defaults(const std::string& name);
Options backbone_defaults(const std::string& name);
Options decoder_defaults(const std::string& name);

// Every factory receives the model's resources (gene sets, edges, gene
// embeddings, ...) by name; a stage that needs one it is not given throws,
// naming it.
std::shared_ptr<TokenizerImpl> make_tokenizer(const std::string& name, const Options& spec, int64_t n_genes,
                                              const Resources& resources);
// n_tokens, dim: the tokenizer's token count and width.
std::shared_ptr<BackboneImpl> make_backbone(const std::string& name, const Options& spec, int64_t n_tokens,
                                            int64_t dim, const Resources& resources);
// Tokens (n_tokens x dim) -> n_genes x heads.
std::shared_ptr<GeneDecoderImpl> make_decoder(const std::string& name, const Options& spec, int64_t n_tokens,
                                              int64_t dim, int64_t n_genes, int64_t heads,
                                              const Resources& resources);

}  // namespace exprflow
