// fmt's out-of-line functions, compiled into libedge instead of linked from libfmt.so: a
// shared C++ library brings the shared C++ runtime into every tool, and the tools link
// that runtime statically (README, design notes). format-inl.h defines the functions;
// the templates fmt's headers leave to its library are instantiated here for the types
// the tools format (float and double, char).
#include <fmt/format-inl.h>

FMT_BEGIN_NAMESPACE
namespace detail {
template auto dragonbox::to_decimal(float x) noexcept -> dragonbox::decimal_fp<float>;
template auto dragonbox::to_decimal(double x) noexcept -> dragonbox::decimal_fp<double>;
template auto thousands_sep_impl(locale_ref) -> thousands_sep_result<char>;
template auto decimal_point_impl(locale_ref) -> char;
}  // namespace detail
FMT_END_NAMESPACE
