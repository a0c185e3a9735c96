#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "exprflow/options.hpp"

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
                       "{\"a\":01}", "{\"a\":1 \"b\":2}", "{\"a\":1,\"a\":2}", "{\"a\":null}"};
  for (const char* text : bad) {
    EXPECT_THROW(Options::from_json(text), std::invalid_argument) << text;
  }
  EXPECT_NE(error_of([] { Options::from_json("{\"a\":{\"b\":1}}"); })
                .find("options JSON must be a flat object"),
            std::string::npos);
  EXPECT_NE(error_of([] { Options::from_json("{\"a\":[1,2]}"); })
                .find("options JSON must be a flat object"),
            std::string::npos);
  EXPECT_NE(error_of([] { Options::from_json("[1]"); }).find("options JSON must be a flat object"),
            std::string::npos);
  EXPECT_NE(error_of([] { Options::from_json("{\"a\":1,}"); }).find("byte offset 7"),
            std::string::npos);
}
