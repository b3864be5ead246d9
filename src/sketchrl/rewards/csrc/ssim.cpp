// SSIM of many images with one fixed target on the CPU, in C++ (sketchrl.rewards.ssim
// compiles it on first use): pytorch-msssim's formula with its valid Gaussian filtering, done
// as a separable 11-tap filter instead of matrix products over the whole width.
//
// Per image plane: one pass along the rows filters x, x^2 and x * target together; then, one
// output row at a time, the pass along the columns and the SSIM formula, summed into the
// plane's mean. The target's filtered mean and variance come from the caller (computed once).
// Planes run in parallel over torch's intra-op threads; each plane's sum is sequential, so the
// result does not depend on the number of threads.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <vector>

namespace {

struct Moments {
  std::vector<float> mean, square, cross;
  explicit Moments(int64_t size) : mean(size), square(size), cross(size) {}
};

// Filter along each row: out[r][j] = sum_k taps[k] * in[r][j + k], for the image, its square
// and its product with the target.
__attribute__((target_clones("avx512f", "avx2", "default")))
void filter_rows(const float* __restrict image, const float* __restrict target,
                 const float* __restrict taps, int64_t window, int64_t height, int64_t width,
                 Moments& rows) {
  const int64_t out_width = width - window + 1;
  for (int64_t r = 0; r < height; ++r) {
    const float* x = image + r * width;
    const float* t = target + r * width;
    float* __restrict mean = rows.mean.data() + r * out_width;
    float* __restrict square = rows.square.data() + r * out_width;
    float* __restrict cross = rows.cross.data() + r * out_width;
    for (int64_t j = 0; j < out_width; ++j) mean[j] = square[j] = cross[j] = 0.0f;
    for (int64_t k = 0; k < window; ++k) {
      const float tap = taps[k];
      for (int64_t j = 0; j < out_width; ++j) {
        const float value = x[j + k];
        mean[j] += tap * value;
        square[j] += tap * value * value;
        cross[j] += tap * value * t[j + k];
      }
    }
  }
}

// out[j] += tap * in[j]
inline void add_scaled(float* __restrict out, const float* __restrict in, float tap,
                       int64_t count) {
  for (int64_t j = 0; j < count; ++j) out[j] += tap * in[j];
}

// Filter the row-filtered moments along the columns, one output row at a time, and return the
// mean of the SSIM map.
__attribute__((target_clones("avx512f", "avx2", "default")))
double ssim_from_rows(const Moments& rows, const float* __restrict target_mean,
                      const float* __restrict target_var, const float* __restrict taps,
                      int64_t window, int64_t out_height, int64_t out_width, float c1, float c2,
                      Moments& line, float* __restrict column_sum) {
  float* __restrict mean = line.mean.data();
  float* __restrict square = line.square.data();
  float* __restrict cross = line.cross.data();
  const float* __restrict rows_mean = rows.mean.data();
  const float* __restrict rows_square = rows.square.data();
  const float* __restrict rows_cross = rows.cross.data();
  for (int64_t j = 0; j < out_width; ++j) column_sum[j] = 0.0f;
  for (int64_t i = 0; i < out_height; ++i) {
    for (int64_t j = 0; j < out_width; ++j) mean[j] = square[j] = cross[j] = 0.0f;
    for (int64_t k = 0; k < window; ++k) {
      const float tap = taps[k];
      const int64_t offset = (i + k) * out_width;
      add_scaled(mean, rows_mean + offset, tap, out_width);
      add_scaled(square, rows_square + offset, tap, out_width);
      add_scaled(cross, rows_cross + offset, tap, out_width);
    }
    const float* mu_t = target_mean + i * out_width;
    const float* var_t = target_var + i * out_width;
    for (int64_t j = 0; j < out_width; ++j) {
      const float mu = mean[j];
      const float variance = square[j] - mu * mu;
      const float covariance = cross[j] - mu * mu_t[j];
      const float contrast = (2.0f * covariance + c2) / (variance + var_t[j] + c2);
      const float luminance = (2.0f * mu * mu_t[j] + c1) / (mu * mu + mu_t[j] * mu_t[j] + c1);
      column_sum[j] += luminance * contrast;  // per column: the loop stays vectorised
    }
  }
  double total = 0.0;
  for (int64_t j = 0; j < out_width; ++j) total += column_sum[j];
  return total / static_cast<double>(out_height * out_width);
}

}  // namespace

// images (P, H, W), target (C, H, W), target_mean and target_var (C, H', W'), taps (window,),
// all float32 and contiguous; plane p is compared with target channel p % C. Returns (P,).
at::Tensor ssim_to_target(const at::Tensor& images, const at::Tensor& target,
                          const at::Tensor& target_mean, const at::Tensor& target_var,
                          const at::Tensor& taps, double c1, double c2) {
  TORCH_CHECK(images.dim() == 3 && target.dim() == 3, "ssim_to_target: (P, H, W) and (C, H, W)");
  for (const at::Tensor* tensor : {&images, &target, &target_mean, &target_var, &taps}) {
    TORCH_CHECK(tensor->scalar_type() == at::kFloat && tensor->is_contiguous() &&
                    tensor->device().is_cpu(),
                "ssim_to_target: contiguous float32 CPU tensors");
  }
  const int64_t planes = images.size(0), height = images.size(1), width = images.size(2);
  const int64_t channels = target.size(0), window = taps.size(0);
  TORCH_CHECK(target.size(1) == height && target.size(2) == width, "ssim_to_target: shapes");
  const int64_t out_height = height - window + 1, out_width = width - window + 1;
  TORCH_CHECK(out_height > 0 && out_width > 0, "ssim_to_target: images smaller than the window");
  TORCH_CHECK(target_mean.numel() == channels * out_height * out_width &&
                  target_var.numel() == target_mean.numel(),
              "ssim_to_target: target statistics");
  at::Tensor result = at::empty({planes}, images.options());
  const float* image_data = images.data_ptr<float>();
  const float* target_data = target.data_ptr<float>();
  const float* mean_data = target_mean.data_ptr<float>();
  const float* var_data = target_var.data_ptr<float>();
  const float* tap_data = taps.data_ptr<float>();
  float* out = result.data_ptr<float>();
  at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
    Moments rows(height * out_width), line(out_width);
    std::vector<float> column_sum(out_width);
    for (int64_t p = begin; p < end; ++p) {
      const int64_t channel = p % channels;
      filter_rows(image_data + p * height * width, target_data + channel * height * width,
                  tap_data, window, height, width, rows);
      const int64_t stats = channel * out_height * out_width;
      out[p] = static_cast<float>(ssim_from_rows(rows, mean_data + stats, var_data + stats,
                                                 tap_data, window, out_height, out_width,
                                                 static_cast<float>(c1),
                                                 static_cast<float>(c2), line,
                                                 column_sum.data()));
    }
  });
  return result;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.def("ssim_to_target", &ssim_to_target,
             "Mean SSIM map of each image plane with its target channel");
}
