#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "io/json.hpp"

namespace json = exprflow::json;

namespace {

// The message of the std::invalid_argument `f` throws; fails the test if it
// throws nothing or something else.
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

}  // namespace

TEST(Json, ParsesAndDumpsEveryType) {
  const std::string text =
      R"({"spec":{"architecture":"latent_tokens","n_layers":4,"lr":0.0003},)"
      R"("genes":["CD3E","MS4A1"],"dispersion":[0.5,-1.25e-07,1e+300],)"
      R"("empty_array":[],"empty_object":{},"flags":[true,false,null]})";
  json::Value value = json::parse(text);
  EXPECT_EQ(json::dump(value), text);

  EXPECT_EQ(value.at("spec").at("architecture").as_string(), "latent_tokens");
  EXPECT_EQ(value.at("spec").at("n_layers").as_number(), 4.0);
  EXPECT_EQ(value.at("spec").at("lr").as_number(), 0.0003);
  EXPECT_EQ(value.at("genes").string_array(), (std::vector<std::string>{"CD3E", "MS4A1"}));
  EXPECT_EQ(value.at("dispersion").number_array(), (std::vector<double>{0.5, -1.25e-07, 1e300}));
  EXPECT_TRUE(value.at("flags").as_array()[0].as_bool());
  EXPECT_TRUE(value.at("flags").as_array()[2].is_null());
  EXPECT_EQ(value.at("empty_object").size(), 0u);
}

TEST(Json, KeepsInsertionOrder) {
  json::Value value = json::Value::object();
  value.set("zeta", 1).set("alpha", 2).set("mid", "x");
  EXPECT_EQ(json::dump(value), R"({"zeta":1,"alpha":2,"mid":"x"})");
  value.set("zeta", 3);  // replaced in place, not appended
  EXPECT_EQ(json::dump(value), R"({"zeta":3,"alpha":2,"mid":"x"})");
  EXPECT_EQ(json::dump(json::parse(R"({"b": 1, "a": 2})")), R"({"b":1,"a":2})");
}

TEST(Json, BuildsArraysAndObjects) {
  json::Value model = json::Value::object();
  model.set("genes", json::Value::strings({"A", "B"}));
  model.set("sizes", json::Value::numbers({1000, 2500.5}));
  json::Value history = json::Value::array();
  history.push(json::Value::object().set("epoch", 1).set("loss", 0.25));
  history.push(json::Value::object().set("epoch", 2).set("loss", 0.125));
  model.set("history", history);
  EXPECT_EQ(json::dump(model),
            R"({"genes":["A","B"],"sizes":[1000,2500.5],)"
            R"("history":[{"epoch":1,"loss":0.25},{"epoch":2,"loss":0.125}]})");
  EXPECT_EQ(json::parse(json::dump(model)), model);
}

TEST(Json, NumbersRoundTripExactly) {
  const double values[] = {0.1,
                           1.0 / 3.0,
                           -2.5e-300,
                           std::numeric_limits<double>::max(),
                           std::numeric_limits<double>::denorm_min(),
                           123456789012345.0,
                           9007199254740993.0,
                           -0.0,
                           1e21,
                           1e-6,
                           0.9999999999999999e-6,
                           9007199254740991.5 - 1.5,
                           4503599627370495.5};
  for (double v : values) {
    std::string text = json::dump(json::Value(v));
    double back = json::parse(text).as_number();
    EXPECT_EQ(back, v) << text;
    EXPECT_EQ(std::signbit(back), std::signbit(v)) << text;
  }
  EXPECT_EQ(json::format_number(1000000), "1000000");
  EXPECT_EQ(json::format_number(-42), "-42");
  EXPECT_EQ(json::format_number(0.1), "0.1");
  EXPECT_EQ(json::format_number(2.5), "2.5");
  EXPECT_EQ(json::format_number(0.0003), "0.0003");
  EXPECT_EQ(json::format_number(1.0 / 3.0), "0.3333333333333333");
  EXPECT_EQ(json::format_number(-1.25e-7), "-1.25e-07");
  EXPECT_EQ(json::format_number(1e300), "1e+300");
  EXPECT_EQ(json::format_number(std::numeric_limits<double>::max()), "1.7976931348623157e+308");
}

TEST(Json, NonFiniteNumbersDumpAsNullAndReadBackAsNan) {
  json::Value value = json::Value::numbers({1.0, std::nan(""), INFINITY});
  EXPECT_EQ(json::dump(value), "[1,null,null]");
  std::vector<double> back = json::parse("[1,null]").number_array();
  ASSERT_EQ(back.size(), 2u);
  EXPECT_TRUE(std::isnan(back[1]));
}

TEST(Json, DecodesUnicodeEscapes) {
  EXPECT_EQ(json::parse(R"("\u0041\u00e9\u20ac")").as_string(), "A\xc3\xa9\xe2\x82\xac");
  // U+1F600 as a surrogate pair, upper- and lower-case hex.
  EXPECT_EQ(json::parse(R"("\uD83D\ude00")").as_string(), "\xf0\x9f\x98\x80");
  EXPECT_EQ(json::parse(R"("a\u0000b")").as_string(), std::string("a\0b", 3));
  EXPECT_EQ(json::parse(R"("\"\\\/\b\f\n\r\t")").as_string(), "\"\\/\b\f\n\r\t");
}

TEST(Json, PassesUtf8Through) {
  const std::string gene = "CD3\xce\xb5-\xe2\x82\xac";  // "CD3ε-€"
  std::string text = json::dump(json::Value(gene));
  EXPECT_EQ(text, "\"" + gene + "\"");
  EXPECT_EQ(json::parse(text).as_string(), gene);
}

TEST(Json, EscapesControlCharactersOnDump) {
  const std::string raw = "q\"b\\n\n\t\x01\x1f";
  std::string text = json::dump(json::Value(raw));
  EXPECT_EQ(text, R"("q\"b\\n\n\t\u0001\u001f")");
  EXPECT_EQ(json::parse(text).as_string(), raw);
}

TEST(Json, AcceptsWhitespace) {
  json::Value value = json::parse(" \n\t{ \"a\" :\r\n [ 1 , 2 ] }\n");
  EXPECT_EQ(value.at("a").number_array(), (std::vector<double>{1, 2}));
}

TEST(Json, ErrorsGiveTheByteOffset) {
  EXPECT_NE(error_of([] { json::parse(R"({"a":1,})"); }).find("byte offset 7"), std::string::npos);
  EXPECT_NE(error_of([] { json::parse(R"({"a" 1})"); }).find("byte offset 5: expected ':'"),
            std::string::npos);
  EXPECT_NE(error_of([] { json::parse("[1,2"); }).find("byte offset 4"), std::string::npos);
  EXPECT_NE(error_of([] { json::parse("[1] x"); }).find("byte offset 4"), std::string::npos);
  EXPECT_NE(error_of([] { json::parse(R"(["abc)"); }).find("unterminated string"),
            std::string::npos);
  EXPECT_NE(error_of([] { json::parse(R"({"a":1,"a":2})"); }).find("duplicate key 'a'"),
            std::string::npos);
  EXPECT_NE(error_of([] { json::parse(R"("\uD83D")"); }).find("byte offset 1"), std::string::npos);
  EXPECT_NE(error_of([] { json::parse(R"("\x")"); }).find("invalid escape"), std::string::npos);
  EXPECT_NE(error_of([] { json::parse(""); }).find("end of input"), std::string::npos);
}

TEST(Json, RejectsNonStandardSyntax) {
  const char* bad[] = {"01",         "1.",        ".5",         "-",           "1e",
                       "+1",         "NaN",       "Infinity",   "tru",         "nul",
                       "'a'",        "[1,]",      "{a:1}",      "// c\n1",     "\"a\tb\"",
                       "\"\\ude00\"", "1e999",     "[1 2]",      "{\"a\":1 \"b\":2}", "[]]"};
  for (const char* text : bad) {
    EXPECT_THROW(json::parse(text), std::invalid_argument) << text;
  }
  std::string deep(1000, '[');
  EXPECT_NE(error_of([&] { json::parse(deep); }).find("nesting deeper"), std::string::npos);
}

TEST(Json, AtNamesTheMissingKey) {
  json::Value value = json::parse(R"({"genes":[]})");
  EXPECT_EQ(error_of([&] { value.at("condition_levels"); }),
            "JSON object has no key 'condition_levels'");
  EXPECT_EQ(value.find("condition_levels"), nullptr);
  EXPECT_TRUE(value.contains("genes"));
}

TEST(Json, TypeErrorsNameTheTypes) {
  json::Value value = json::parse(R"({"n":1,"s":"x","a":[1,"two"]})");
  EXPECT_EQ(error_of([&] { value.at("n").as_string(); }), "JSON value is number, expected string");
  EXPECT_EQ(error_of([&] { value.at("s").as_number(); }), "JSON value is string, expected number");
  EXPECT_EQ(error_of([&] { value.at("a").number_array(); }),
            "JSON array element 1 is string, expected number");
  EXPECT_EQ(error_of([&] { value.at("a").string_array(); }),
            "JSON array element 0 is number, expected string");
  EXPECT_THROW(value.at("n").at("x"), std::invalid_argument);
  EXPECT_THROW(value.at("n").push(1), std::invalid_argument);
}
