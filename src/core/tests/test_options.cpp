#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "exprflow/options.hpp"
#include "io/model_archive.hpp"

using exprflow::Options;

namespace {

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (...) {
    ADD_FAILURE() << "threw something other than std::invalid_argument";
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

Options example() {
  Options o;
  o.set("n_layers", 4)
      .set("lr", 3e-4)
      .set("dropout", 0.1)
      .set("architecture", "latent_tokens")
      .set("seed", 123456789012.0)
      .set("use_ema", 1)
      .set("third", 1.0 / 3.0)
      .set("tiny", -2.5e-300);
  return o;
}

}  // namespace

TEST(Options, TypedReads) {
  Options o = example();
  EXPECT_EQ(o.integer("n_layers"), 4);
  EXPECT_EQ(o.number("lr"), 3e-4);
  EXPECT_EQ(o.text("architecture"), "latent_tokens");
  EXPECT_TRUE(o.flag("use_ema", false));
  EXPECT_EQ(o.integer("seed"), 123456789012L);

  EXPECT_EQ(o.number("absent", 2.5), 2.5);
  EXPECT_EQ(o.integer("absent", 7), 7);
  EXPECT_FALSE(o.flag("absent", false));
  EXPECT_EQ(o.text("absent", "fallback"), "fallback");
  EXPECT_EQ(error_of([&] { o.number("absent"); }), "option 'absent' is missing");
}

TEST(Options, SetReplacesTheType) {
  Options o;
  o.set("x", "text").set("x", 2);
  EXPECT_EQ(o.integer("x"), 2);
  o.set("x", std::string("again"));
  EXPECT_EQ(o.text("x"), "again");
  EXPECT_EQ(o.values().size(), 1u);
}

TEST(Options, TypeErrorsNameTheKey) {
  Options o;
  o.set("n_layers", "abc").set("name", 3).set("half", 2.5);
  EXPECT_EQ(error_of([&] { o.number("n_layers"); }),
            "option 'n_layers' must be a number, got string 'abc'");
  EXPECT_EQ(error_of([&] { o.number("n_layers", 1.0); }),
            "option 'n_layers' must be a number, got string 'abc'");
  EXPECT_EQ(error_of([&] { o.text("name"); }), "option 'name' must be a string, got number 3");
  EXPECT_EQ(error_of([&] { o.integer("half"); }), "option 'half' must be an integer, got number 2.5");
  EXPECT_EQ(error_of([&] { o.integer("half", 1); }),
            "option 'half' must be an integer, got number 2.5");
  EXPECT_THROW(o.integer("n_layers"), std::invalid_argument);
}

TEST(Options, IntegerRejectsNonIntegralAndHuge) {
  Options o;
  o.set("a", 2.5).set("b", -0.5).set("c", 1e30).set("d", -3);
  EXPECT_THROW(o.integer("a"), std::invalid_argument);
  EXPECT_THROW(o.integer("b"), std::invalid_argument);
  EXPECT_NE(error_of([&] { o.integer("c"); }).find("option 'c'"), std::string::npos);
  EXPECT_EQ(o.integer("d"), -3);
}

TEST(Options, Flags) {
  Options o;
  o.set("one", 1).set("zero", 0.0).set("yes", "true").set("no", "false").set("R", "TRUE");
  o.set("two", 2).set("word", "yes");
  EXPECT_TRUE(o.flag("one", false));
  EXPECT_FALSE(o.flag("zero", true));
  EXPECT_TRUE(o.flag("yes", false));
  EXPECT_FALSE(o.flag("no", true));
  EXPECT_TRUE(o.flag("R", false));
  EXPECT_NE(error_of([&] { o.flag("two", false); }).find("option 'two' must be a flag"),
            std::string::npos);
  EXPECT_NE(error_of([&] { o.flag("word", false); }).find("got string 'yes'"), std::string::npos);
}

TEST(Options, RejectsNonFiniteAndEmptyNames) {
  Options o;
  EXPECT_EQ(error_of([&] { o.set("lr", std::nan("")); }),
            "option 'lr' must be a finite number, got nan");
  EXPECT_THROW(o.set("clip", std::numeric_limits<double>::infinity()), std::invalid_argument);
  EXPECT_THROW(o.set("", 1), std::invalid_argument);
  EXPECT_TRUE(o.values().empty());
}

TEST(Options, MergedOverridesAndCatchesTypos) {
  Options defaults;
  defaults.set("n_layers", 4).set("dim", 128).set("architecture", "latent_tokens");
  Options overrides;
  overrides.set("n_layers", 8);
  Options merged = defaults.merged(overrides, true);
  EXPECT_EQ(merged.integer("n_layers"), 8);
  EXPECT_EQ(merged.integer("dim"), 128);
  EXPECT_EQ(defaults.integer("n_layers"), 4);  // the original is untouched

  Options typo;
  typo.set("n_layer", 8);
  EXPECT_EQ(error_of([&] { defaults.merged(typo, true); }),
            "unknown option 'n_layer'; known options: architecture, dim, n_layers");
  EXPECT_EQ(defaults.merged(typo, false).integer("n_layer"), 8);
}

TEST(Options, JsonRoundTrip) {
  Options o = example();
  o.set("quote", "say \"hi\"\\path\n\ttab\x01 \xce\xb5");
  std::string text = o.to_json();
  Options back = Options::from_json(text);
  ASSERT_EQ(back.values().size(), o.values().size());
  for (const auto& [key, value] : o.values()) {
    const Options::Value& other = back.values().at(key);
    EXPECT_EQ(other.is_number, value.is_number) << key;
    EXPECT_EQ(other.number, value.number) << key;
    EXPECT_EQ(other.text, value.text) << key;
  }
  EXPECT_EQ(back.to_json(), text);
}

TEST(Options, JsonFormat) {
  Options o;
  o.set("b", 3).set("a", 0.1).set("big", 1e6).set("s", "x\"y\\z\n\x02");
  EXPECT_EQ(o.to_json(), R"({"a":0.1,"b":3,"big":1000000,"s":"x\"y\\z\n\u0002"})");
  EXPECT_EQ(Options().to_json(), "{}");
}

TEST(Options, FromJsonAcceptsWhitespaceAndBooleans) {
  Options o = Options::from_json(" {\n  \"n\" : 2 ,\n  \"ema\": true, \"amp\": false,\"s\":\"\\u00e9\"\n}\n");
  EXPECT_EQ(o.integer("n"), 2);
  EXPECT_EQ(o.number("ema"), 1.0);
  EXPECT_FALSE(o.flag("amp", true));
  EXPECT_EQ(o.text("s"), "\xc3\xa9");
  EXPECT_TRUE(Options::from_json("{}").values().empty());
}

TEST(Options, FromJsonRejectsMalformed) {
  const char* bad[] = {"",           "[]",           "1",          "\"x\"",         "{",
                       "{\"a\":1,}", "{\"a\":1}x",   "{'a':1}",    "{\"a\":NaN}",   "{a:1}",
                       "{\"a\":01}", "{\"a\":1 \"b\":2}", "{\"a\":1,\"a\":2}", "{\"a\":null}",
                       "{\"a\":1e400}", "{\"a\":\"\xff\"}"};
  for (const char* text : bad) {
    EXPECT_THROW(Options::from_json(text), std::invalid_argument) << text;
  }
  EXPECT_EQ(error_of([] { Options::from_json("[1]"); }), "options JSON must be an object, got array");
  EXPECT_EQ(error_of([] { Options::from_json("{\"a\":1,}"); }),
            "invalid options JSON at byte offset 7: parse error at line 1, column 8: syntax error while "
            "parsing object key - unexpected '}'; expected string literal");
  EXPECT_EQ(error_of([] { Options::from_json("{\"a\":null}"); }),
            "option 'a' must be a number, a string, a list or an object, got null");
  EXPECT_EQ(error_of([] { Options::from_json("{\"a\":1,\"a\":2}"); }),
            "invalid options JSON: option 'a' is given twice");
  EXPECT_EQ(error_of([] { Options::from_json("{\"b\":{\"x\":1,\"y\":2,\"x\":3}}"); }),
            "invalid options JSON: option 'b.x' is given twice");
  // The same key in two different objects is fine.
  EXPECT_EQ(Options::from_json("{\"x\":1,\"b\":{\"x\":2}}").child("b").integer("x"), 2);
}

TEST(Options, FormatNumber) {
  // Error messages print numbers with exprflow::format_number (io/json.hpp),
  // through Options' messages here.
  auto shown = [](double v) {
    Options o;
    o.set("x", v);
    return error_of([&] { o.text("x"); });
  };
  EXPECT_EQ(shown(1000000), "option 'x' must be a string, got number 1000000");
  EXPECT_EQ(shown(-42), "option 'x' must be a string, got number -42");
  EXPECT_EQ(shown(0.0003), "option 'x' must be a string, got number 0.0003");
  EXPECT_EQ(shown(1.0 / 3.0), "option 'x' must be a string, got number 0.3333333333333333");
  EXPECT_EQ(shown(-1.25e-7), "option 'x' must be a string, got number -1.25e-07");
  EXPECT_EQ(shown(1e300), "option 'x' must be a string, got number 1e+300");
  EXPECT_EQ(shown(-0.0), "option 'x' must be a string, got number -0");
}

// ------------------------------------------------------------------ lists ---
TEST(Options, Lists) {
  Options o;
  o.set("dims", {256, 128.5}).set("genes", {"CD3E", "MS4A1"});
  o.set("empty", std::vector<double>{}).set("none", std::vector<std::string>{});
  EXPECT_EQ(o.numbers("dims"), (std::vector<double>{256, 128.5}));
  EXPECT_EQ(o.texts("genes"), (std::vector<std::string>{"CD3E", "MS4A1"}));
  EXPECT_EQ(o.values().at("dims").kind, Options::Value::Kind::numbers);
  EXPECT_FALSE(o.values().at("dims").is_number);

  // A scalar reads as a list of one (what R's length-1 vectors become) and an
  // empty list of either type as an empty list of both.
  o.set("one", 3).set("word", "x");
  EXPECT_EQ(o.numbers("one"), std::vector<double>{3});
  EXPECT_EQ(o.texts("word"), std::vector<std::string>{"x"});
  EXPECT_TRUE(o.texts("empty").empty());
  EXPECT_TRUE(o.numbers("none").empty());

  EXPECT_EQ(o.numbers("absent", {1, 2}), (std::vector<double>{1, 2}));
  EXPECT_EQ(o.texts("absent", {"a"}), std::vector<std::string>{"a"});
  EXPECT_EQ(o.numbers("dims", {}), (std::vector<double>{256, 128.5}));

  // Setting replaces the kind, leaving nothing of the old value behind.
  o.set("dims", 4);
  EXPECT_EQ(o.integer("dims"), 4);
  EXPECT_TRUE(o.values().at("dims").numbers.empty());
}

TEST(Options, ListErrorsNameTheKeyAndWhatWasFound) {
  Options o;
  o.set("dims", {1, 2, 3}).set("genes", {"a", "b"}).set("name", "x").set("n", 2);
  o.set("long", {1, 2, 3, 4, 5, 6, 7, 8});
  EXPECT_EQ(error_of([&] { o.texts("dims"); }),
            "option 'dims' must be a list of strings, got a list of 3 numbers [1, 2, 3]");
  EXPECT_EQ(error_of([&] { o.numbers("genes"); }),
            "option 'genes' must be a list of numbers, got a list of 2 strings ['a', 'b']");
  EXPECT_EQ(error_of([&] { o.numbers("name"); }), "option 'name' must be a list of numbers, got string 'x'");
  EXPECT_EQ(error_of([&] { o.texts("n"); }), "option 'n' must be a list of strings, got number 2");
  EXPECT_EQ(error_of([&] { o.number("dims"); }),
            "option 'dims' must be a number, got a list of 3 numbers [1, 2, 3]");
  EXPECT_EQ(error_of([&] { o.integer("long"); }),
            "option 'long' must be an integer, got a list of 8 numbers [1, 2, 3, 4, 5, 6, ...]");
  EXPECT_EQ(error_of([&] { o.text("genes"); }),
            "option 'genes' must be a string, got a list of 2 strings ['a', 'b']");
  EXPECT_NE(error_of([&] { o.flag("dims", false); }).find("option 'dims' must be a flag"), std::string::npos);
  EXPECT_EQ(error_of([&] { o.numbers("absent"); }), "option 'absent' is missing");
  EXPECT_EQ(error_of([&] { o.texts("absent"); }), "option 'absent' is missing");
  EXPECT_EQ(error_of([&] { o.set("bad", {1.0, std::nan("")}); }),
            "option 'bad' must hold finite numbers, got nan at element 2");
  EXPECT_FALSE(o.has("bad"));
}

// ----------------------------------------------------------------- nested ---
namespace {

Options staged() {
  Options backbone;
  backbone.set("n_layers", 4).set("dim", 128).set("kind", "dit");
  Options decoder;
  decoder.set("hidden", {512, 256});
  Options o;
  o.set("architecture", "latent_tokens").set("backbone", backbone).set("decoder", decoder);
  return o;
}

}  // namespace

TEST(Options, NestedOptions) {
  Options o = staged();
  EXPECT_EQ(o.child("backbone").integer("n_layers"), 4);
  EXPECT_EQ(o.child("decoder").numbers("hidden"), (std::vector<double>{512, 256}));
  EXPECT_EQ(o.values().at("backbone").kind, Options::Value::Kind::options);

  // Copies do not share changes: child() hands out a copy, and a stored set
  // is a copy of what was passed.
  Options backbone = o.child("backbone");
  backbone.set("n_layers", 12);
  EXPECT_EQ(o.child("backbone").integer("n_layers"), 4);
  Options copy = o;
  copy.set("backbone", backbone);
  EXPECT_EQ(copy.child("backbone").integer("n_layers"), 12);
  EXPECT_EQ(o.child("backbone").integer("n_layers"), 4);

  // Storing a set into itself stores it as it was.
  Options self;
  self.set("a", 1);
  self.set("self", self);
  EXPECT_EQ(self.child("self").integer("a"), 1);
  EXPECT_FALSE(self.child("self").has("self"));

  // Two levels down.
  Options outer;
  outer.set("model", o);
  EXPECT_EQ(outer.child("model").child("backbone").text("kind"), "dit");
}

TEST(Options, NestedErrorsNameTheFullPath) {
  Options o = staged();
  EXPECT_EQ(error_of([&] { o.child("architecture"); }),
            "option 'architecture' must be nested options, got string 'latent_tokens'");
  EXPECT_EQ(error_of([&] { o.child("absent"); }), "option 'absent' is missing");
  EXPECT_EQ(error_of([&] { o.number("backbone"); }),
            "option 'backbone' must be a number, got nested options {dim, kind, n_layers}");

  const Options backbone = o.child("backbone");
  EXPECT_EQ(error_of([&] { backbone.integer("kind"); }),
            "option 'backbone.kind' must be an integer, got string 'dit'");
  EXPECT_EQ(error_of([&] { backbone.number("depth"); }), "option 'backbone.depth' is missing");
  EXPECT_EQ(error_of([&] { o.child("decoder").texts("hidden"); }),
            "option 'decoder.hidden' must be a list of strings, got a list of 2 numbers [512, 256]");
  Options outer;
  outer.set("model", o);
  EXPECT_EQ(error_of([&] { outer.child("model").child("backbone").positive("kind"); }),
            "option 'model.backbone.kind' must be an integer, got string 'dit'");
  // The path is where the set was read from, not part of it: stored elsewhere,
  // it takes the path of its new place.
  Options moved;
  moved.set("stage", backbone);
  EXPECT_EQ(error_of([&] { moved.child("stage").integer("kind"); }),
            "option 'stage.kind' must be an integer, got string 'dit'");
  EXPECT_EQ(backbone.to_json(), R"({"dim":128,"kind":"dit","n_layers":4})");
}

TEST(Options, MergedRecursesIntoNestedOptions) {
  const Options defaults = staged();
  Options backbone;
  backbone.set("n_layers", 8);
  Options overrides;
  overrides.set("backbone", backbone);
  Options merged = defaults.merged(overrides, true);
  EXPECT_EQ(merged.child("backbone").integer("n_layers"), 8);
  EXPECT_EQ(merged.child("backbone").integer("dim"), 128);  // kept: merged, not replaced
  EXPECT_EQ(merged.child("backbone").text("kind"), "dit");
  EXPECT_EQ(merged.text("architecture"), "latent_tokens");
  EXPECT_EQ(defaults.child("backbone").integer("n_layers"), 4);  // the original is untouched

  // A typo inside a nested set is named by its path, with the known keys there.
  Options typo_stage;
  typo_stage.set("n_layer", 8);
  Options typo;
  typo.set("backbone", typo_stage);
  EXPECT_EQ(error_of([&] { defaults.merged(typo, true); }),
            "unknown option 'backbone.n_layer'; known options: backbone.dim, backbone.kind, backbone.n_layers");
  Options loose = defaults.merged(typo, false);
  EXPECT_EQ(loose.child("backbone").integer("n_layer"), 8);
  EXPECT_EQ(loose.child("backbone").integer("n_layers"), 4);

  // Anything but nested-over-nested replaces the value whole.
  Options flat;
  flat.set("decoder", "none").set("backbone", "tiny");
  Options replaced = defaults.merged(flat, true);
  EXPECT_EQ(replaced.text("decoder"), "none");
  Options back = replaced.merged(overrides, true);
  EXPECT_EQ(back.child("backbone").to_json(), R"({"n_layers":8})");

  // Defaults merged with a child's settings name keys like the child.
  Options stage_defaults;
  stage_defaults.set("n_layers", 4);
  EXPECT_EQ(error_of([&] { stage_defaults.merged(typo.child("backbone"), true); }),
            "unknown option 'backbone.n_layer'; known options: backbone.n_layers");
  Options stage = stage_defaults.merged(defaults.child("backbone"), false);
  EXPECT_EQ(error_of([&] { stage.integer("kind"); }),
            "option 'backbone.kind' must be an integer, got string 'dit'");
}

TEST(Options, JsonRoundTripOfListsAndNestedOptions) {
  Options o = staged();
  o.set("genes", {"CD3E", "caf\xc3\xa9"}).set("weights", {0.1, 1.0 / 3.0, -2.5e-300, 1e21});
  o.set("none", std::vector<double>{}).set("empty", Options());
  Options deeper;
  deeper.set("stage", o.child("backbone"));
  o.set("deeper", deeper);

  const std::string text = o.to_json();
  EXPECT_NE(text.find(R"("backbone":{"dim":128,"kind":"dit","n_layers":4})"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("decoder":{"hidden":[512,256]})"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("genes":["CD3E","caf)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("empty":{})"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("none":[])"), std::string::npos) << text;

  const Options back = Options::from_json(text);
  EXPECT_EQ(back.to_json(), text);
  EXPECT_EQ(back.numbers("weights"), o.numbers("weights"));
  EXPECT_EQ(back.texts("genes"), o.texts("genes"));
  EXPECT_EQ(back.child("backbone").integer("n_layers"), 4);
  EXPECT_EQ(back.child("deeper").child("stage").text("kind"), "dit");
  EXPECT_TRUE(back.child("empty").values().empty());
  EXPECT_TRUE(back.numbers("none").empty());
  EXPECT_TRUE(back.texts("none").empty());
}

TEST(Options, FromJsonReadsListsAndObjects) {
  Options o = Options::from_json(
      R"({"dims":[1,2.5,-3e2],"flags":[true,false,1],"names":["a","\u00e9"],"empty":[],)"
      R"("stage":{"n":2,"inner":{"s":"x"}}})");
  EXPECT_EQ(o.numbers("dims"), (std::vector<double>{1, 2.5, -300}));
  EXPECT_EQ(o.numbers("flags"), (std::vector<double>{1, 0, 1}));
  EXPECT_EQ(o.texts("names"), (std::vector<std::string>{"a", "\xc3\xa9"}));
  EXPECT_TRUE(o.numbers("empty").empty());
  EXPECT_EQ(o.child("stage").integer("n"), 2);
  EXPECT_EQ(o.child("stage").child("inner").text("s"), "x");
}

TEST(Options, FromJsonRejectsMixedAndNestedArrays) {
  EXPECT_EQ(error_of([] { Options::from_json(R"({"a":[1,"x"]})"); }),
            "option 'a' must be a list of numbers or a list of strings, but mixes both");
  EXPECT_EQ(error_of([] { Options::from_json(R"({"a":[[1],[2]]})"); }),
            "option 'a' must be a list of numbers or a list of strings, but holds an array");
  EXPECT_EQ(error_of([] { Options::from_json(R"({"a":[{"b":1}]})"); }),
            "option 'a' must be a list of numbers or a list of strings, but holds an object");
  EXPECT_EQ(error_of([] { Options::from_json(R"({"a":[1,null]})"); }),
            "option 'a' must be a list of numbers or a list of strings, but holds null");
  // Errors inside nested objects name the full path.
  EXPECT_EQ(error_of([] { Options::from_json(R"({"s":{"t":{"a":["x",2]}}})"); }),
            "option 's.t.a' must be a list of numbers or a list of strings, but mixes both");
  EXPECT_EQ(error_of([] { Options::from_json(R"({"s":{"v":null}})"); }),
            "option 's.v' must be a number, a string, a list or an object, got null");
  // A number too large for a double is caught by the parser, before any path is known.
  EXPECT_EQ(error_of([] { Options::from_json(R"({"s":{"v":[1e400]}})"); }),
            "invalid options JSON: number overflow parsing '1e400'");
}

// ---------------------------------------------------- model-file history ---
// The other JSON that every model file holds (io/model_archive.hpp).
TEST(ModelArchive, HistoryRoundTripsWithNullForNaN) {
  std::vector<exprflow::EpochRecord> history(2);
  history[0] = {"vae", 1, 0.5, std::nan(""), 1e-3, 2.0};
  history[1] = {"latent", 2, 1.0 / 3.0, 0.25, 5e-4, 0.125};
  const exprflow::Json rows = exprflow::history_to_json(history);
  const std::string text = rows.dump();
  EXPECT_EQ(text.substr(0, 103),
            R"([{"stage":"vae","epoch":1,"train_loss":0.5,"validation_loss":null,"learning_rate":0.001,"seconds":2.0},)");
  const auto back = exprflow::history_from_json(exprflow::Json::parse(text));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].stage, "vae");
  EXPECT_EQ(back[1].stage, "latent");
  // Files written before stages existed read as one stage, "model".
  EXPECT_EQ(exprflow::history_from_json(exprflow::Json::parse(
                R"([{"epoch":1,"train_loss":0.5,"validation_loss":null,"learning_rate":0.001,"seconds":2.0}])"))[0]
                .stage,
            "model");
  EXPECT_TRUE(std::isnan(back[0].validation_loss));
  EXPECT_EQ(back[1].epoch, 2);
  EXPECT_EQ(back[1].train_loss, 1.0 / 3.0);
  EXPECT_EQ(back[1].validation_loss, 0.25);
  EXPECT_EQ(back[1].learning_rate, 5e-4);
  EXPECT_EQ(back[1].seconds, 0.125);
  EXPECT_THROW(exprflow::history_from_json(exprflow::Json::object()), std::invalid_argument);
  EXPECT_ANY_THROW(exprflow::history_from_json(exprflow::Json::parse(R"([{"epoch":1}])")));
}
