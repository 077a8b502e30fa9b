#include <gtest/gtest.h>

#include "core/shape.h"

namespace tailor {
namespace {

TEST(Shape, RowsColsNumel) {
  const Shape s{2, 3, 4};
  EXPECT_EQ(s.rank(), 3);
  EXPECT_EQ(s.numel(), 24);
  EXPECT_EQ(s.rows(), 6);
  EXPECT_EQ(s.cols(), 4);
  EXPECT_EQ(s[-1], 4);
  EXPECT_EQ(s.str(), "[2, 3, 4]");
  EXPECT_EQ(Shape{}.numel(), 1);  // a scalar
  EXPECT_EQ(Shape{}.rows(), 1);
}

TEST(Shape, ZeroSizedDimensions) {
  // A [5, 0] matrix still has 5 rows; a [0, 7] one has none.
  EXPECT_EQ((Shape{5, 0}).rows(), 5);
  EXPECT_EQ((Shape{5, 0}).cols(), 0);
  EXPECT_EQ((Shape{5, 0}).numel(), 0);
  EXPECT_EQ((Shape{0, 7}).rows(), 0);
}

TEST(Shape, EqualityAndBadIndex) {
  EXPECT_EQ((Shape{2, 3}), (Shape{2, 3}));
  EXPECT_FALSE((Shape{2, 3}) == (Shape{3, 2}));
  EXPECT_FALSE((Shape{6}) == (Shape{6, 1}));
  EXPECT_THROW((void)(Shape{2, 3})[2], InternalError);
}

}  // namespace
}  // namespace tailor
