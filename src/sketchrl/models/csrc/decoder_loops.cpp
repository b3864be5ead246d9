// The two recurrent loops of a plain-LSTM SketchRNN decoder on the CPU, in C++
// (sketchrl.models.native compiles them on first use): sampling, one call per chunk of steps,
// and the backward recurrence of sketchrl.models.fused_lstm.LSTMSequence.
//
// Each step does what sketchrl.models.sampling does in Python, with the same ATen ops for the
// LSTM (so the recurrent numerics are the same) and a scalar loop over the batch for the draw
// from the output head (Gumbel-max pen state and mixture component, the chosen component's
// correlated Gaussian): the few dozen tiny tensor ops a step costs in Python become one pass
// over B rows. Random numbers come from the caller (the same chunks as the Python sampler).
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <vector>

namespace {

constexpr int kPenEnd = 2;

// One LSTM step from state (h, c): gates (B, 4H) <- activations (sigmoid i, f, o; tanh g),
// c_new and h_new <- the new state (the same ATen ops as sketchrl.models.fused_lstm.lstm_step).
void lstm_step(at::Tensor gates, const at::Tensor& rows, const at::Tensor& w_rows,
               const at::Tensor& w_hh, const at::Tensor& bias, const at::Tensor& h,
               const at::Tensor& c, at::Tensor c_new, at::Tensor h_new) {
  const int64_t hidden = h.size(1);
  at::addmm_out(gates, bias, rows, w_rows);
  gates.addmm_(h, w_hh);
  gates.narrow(1, 0, 2 * hidden).sigmoid_();
  gates.narrow(1, 2 * hidden, hidden).tanh_();
  gates.narrow(1, 3 * hidden, hidden).sigmoid_();
  at::mul_out(c_new, gates.narrow(1, hidden, hidden), c);
  c_new.addcmul_(gates.narrow(1, 0, hidden), gates.narrow(1, 2 * hidden, hidden));
  at::tanh_out(h_new, c_new);
  h_new.mul_(gates.narrow(1, 3 * hidden, hidden));
}

template <typename T>
int argmax(const T* values, const T* noise, int64_t count) {
  int best = 0;
  T top = values[0] + noise[0];
  for (int64_t k = 1; k < count; ++k) {
    const T v = values[k] + noise[k];
    if (v > top) {
      top = v;
      best = static_cast<int>(k);
    }
  }
  return best;
}

// Each row's pen state (Gumbel-max over the 3 pen logits) and its chosen component's
// parameters (Gumbel-max over the M mixture logits): chosen (B, 5) = mu_x, mu_y, log sigma_x,
// log sigma_y, pre-tanh rho, as the gather of sketchrl.models.sampling.sample_from_output.
template <typename T>
void choose(const T* y, const T* gumbel, int64_t batch, int64_t m, T* chosen, int* pens) {
  for (int64_t b = 0; b < batch; ++b) {
    const T* outputs = y + b * (3 + 6 * m);
    const T* noise = gumbel + b * (3 + m);
    pens[b] = argmax(outputs, noise, 3);
    const int component = argmax(outputs + 3, noise + 3, m);
    for (int64_t k = 0; k < 5; ++k) chosen[b * 5 + k] = outputs[3 + m + k * m + component];
  }
}

// Draws step t's rows into `rows` and `written` (end rows where a sketch has ended), marks the
// sampled ones, updates `active`; returns whether any sketch is still active. exp, tanh and
// sqrt are ATen's (its vectorised versions are not all correctly rounded), on tensors shaped as
// in the Python sampler, and the remaining arithmetic (exact IEEE operations) is done in the
// same order without contraction, so that both samplers give the same bits.
template <typename T>
bool draw_rows(const at::Tensor& y, const at::Tensor& gumbel, const at::Tensor& normal,
               int64_t m, double log_sigma_offset, double rho_margin, at::Tensor& rows,
               at::Tensor& active, at::Tensor written, at::Tensor sampled) {
  const int64_t batch = rows.size(0);
  at::Tensor chosen = at::empty({batch, 5}, y.options());
  std::vector<int> pens(batch);
  choose<T>(y.data_ptr<T>(), gumbel.data_ptr<T>(), batch, m, chosen.data_ptr<T>(), pens.data());
  const at::Tensor sigma = at::exp(at::add(chosen.narrow(1, 2, 2), log_sigma_offset));
  const at::Tensor rho = at::tanh(chosen.select(1, 4)).clamp_(-1.0 + rho_margin,
                                                             1.0 - rho_margin);
  const at::Tensor root = at::sqrt(1 - rho * rho);  // ATen's sqrt may round differently
  const T *mu = chosen.data_ptr<T>(), *sigmas = sigma.data_ptr<T>(), *rhos = rho.data_ptr<T>();
  const T* roots = root.data_ptr<T>();
  const T* normals = normal.data_ptr<T>();
  T* next_rows = rows.data_ptr<T>();
  T* written_rows = written.data_ptr<T>();
  bool* is_active = active.data_ptr<bool>();
  bool* was_sampled = sampled.data_ptr<bool>();
  bool any_active = false;
  for (int64_t b = 0; b < batch; ++b) {
    T* row = next_rows + b * 5;
    was_sampled[b] = is_active[b];
    if (is_active[b]) {
      const T e1 = normals[2 * b], e2 = normals[2 * b + 1];
      const T correlated = rhos[b] * e1 + roots[b] * e2;
      const T keep = pens[b] != kPenEnd ? T(1) : T(0);
      row[0] = (mu[b * 5] + sigmas[2 * b] * e1) * keep;
      row[1] = (mu[b * 5 + 1] + sigmas[2 * b + 1] * correlated) * keep;
      for (int k = 0; k < 3; ++k) row[2 + k] = pens[b] == k ? T(1) : T(0);
      is_active[b] = pens[b] != kPenEnd;
    } else {
      std::fill(row, row + 5, T(0));
      row[2 + kPenEnd] = T(1);
    }
    any_active = any_active || is_active[b];
    std::copy(row, row + 5, written_rows + b * 5);
  }
  return any_active;
}

}  // namespace

// Runs up to `steps` steps; returns how many ran (fewer when every sketch has ended).
// State (updated in place): h, c (B, H); rows (B, 5), the next input; active (B,) bool.
// Noise: gumbel (>= steps, B, 3 + M), normal (>= steps, B, 2). Outputs, written at [t]:
// out_rows (.., B, 5), out_mask (.., B) bool (the step was sampled), out_y (.., B, 6M + 3),
// out_h (.., B, H), and with `record` out_act (.., B, 4H) and out_c (.., B, H).
int64_t sample_steps(const at::Tensor& w_rows, const at::Tensor& w_hh, const at::Tensor& bias,
                     const at::Tensor& w_out, const at::Tensor& b_out, at::Tensor h,
                     at::Tensor c, at::Tensor rows, at::Tensor active,
                     const at::Tensor& gumbel, const at::Tensor& normal,
                     double log_sigma_offset, int64_t num_mixture, double rho_margin,
                     at::Tensor out_rows, at::Tensor out_mask, at::Tensor out_y,
                     at::Tensor out_h, at::Tensor out_act, at::Tensor out_c, bool record,
                     int64_t steps) {
  const std::initializer_list<const at::Tensor*> checked = {
      &h, &c, &rows, &active, &gumbel, &normal, &out_rows, &out_mask, &out_y, &out_h, &out_act,
      &out_c};
  for (const at::Tensor* tensor : checked) {
    TORCH_CHECK(tensor->device().is_cpu() && tensor->is_contiguous(),
                "sample_steps: every state and buffer must be a contiguous CPU tensor");
  }
  TORCH_CHECK(active.scalar_type() == at::kBool && out_mask.scalar_type() == at::kBool,
              "sample_steps: active and out_mask must be bool");
  TORCH_CHECK(gumbel.size(0) >= steps && normal.size(0) >= steps && out_y.size(0) >= steps,
              "sample_steps: fewer noise or output rows than steps");
  const at::Tensor gates_scratch = at::empty({h.size(0), 4 * h.size(1)}, h.options());
  const at::Tensor cell_scratch = at::empty({2, c.size(0), c.size(1)}, c.options());
  at::Tensor h_now = h, c_now = c;  // each step reads the previous step's outputs in place
  for (int64_t t = 0; t < steps; ++t) {
    const at::Tensor c_next = record ? out_c[t] : cell_scratch[t % 2];
    lstm_step(record ? out_act[t] : gates_scratch, rows, w_rows, w_hh, bias, h_now, c_now,
              c_next, out_h[t]);
    h_now = out_h[t];
    c_now = c_next;
    at::Tensor y = out_y[t];
    at::addmm_out(y, b_out, h_now, w_out);
    bool any_active = false;
    AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "sample_steps", [&] {
      any_active = draw_rows<scalar_t>(y, gumbel[t], normal[t], num_mixture, log_sigma_offset,
                                       rho_margin, rows, active, out_rows[t], out_mask[t]);
    });
    if (!any_active) {
      steps = t + 1;
      break;
    }
  }
  h.copy_(h_now);
  c.copy_(c_now);
  return steps;
}

// The backward recurrence of LSTMSequence (sketchrl.models.fused_lstm), step-major: from
// grad_hidden, activations (i, f, g, o), cells (T, B, H or 4H), c0 (B, H) and w_hh_t (4H, H),
// the gradients of the pre-activations (T, B, 4H) and of h0 and c0. Per step one pass over the
// elements instead of a handful of tensor ops, and one matrix product. The products are the
// Python version's, in the same order, and dc is ATen's addcmul as there (its kernel may fuse
// the multiply-add), so the two agree bit for bit.
std::vector<at::Tensor> lstm_backward(const at::Tensor& grad_hidden, const at::Tensor& activations,
                                      const at::Tensor& cells, const at::Tensor& c0,
                                      const at::Tensor& w_hh_t) {
  for (const at::Tensor* tensor : {&grad_hidden, &activations, &cells, &c0, &w_hh_t}) {
    TORCH_CHECK(tensor->device().is_cpu() && tensor->is_contiguous(),
                "lstm_backward: every input must be a contiguous CPU tensor");
  }
  const int64_t steps = cells.size(0), batch = cells.size(1), hidden = cells.size(2);
  const at::Tensor tanh_cells = at::tanh(cells);
  const at::Tensor dc_from_h =
      activations.narrow(2, 3 * hidden, hidden) * (1 - tanh_cells * tanh_cells);
  at::Tensor grad_gates = at::empty({steps, batch, 4 * hidden}, cells.options());
  at::Tensor dh_next = at::zeros({batch, hidden}, cells.options());
  at::Tensor dc_next = at::zeros({batch, hidden}, cells.options());
  at::Tensor dh = at::empty_like(dh_next), dc = at::empty_like(dc_next);
  AT_DISPATCH_FLOATING_TYPES(cells.scalar_type(), "lstm_backward", [&] {
    using T = scalar_t;
    const int64_t count = batch * hidden;
    for (int64_t t = steps - 1; t >= 0; --t) {
      const T* grad_h = grad_hidden.data_ptr<T>() + t * count;
      T* dh_data = dh.data_ptr<T>();
      const T* dh_in = dh_next.data_ptr<T>();
      for (int64_t k = 0; k < count; ++k) dh_data[k] = grad_h[k] + dh_in[k];
      at::addcmul_out(dc, dc_next, dh, dc_from_h[t]);
      const T* act = activations.data_ptr<T>() + t * 4 * count;
      const T* tanh_c = tanh_cells.data_ptr<T>() + t * count;
      const T* c_prev = t > 0 ? cells.data_ptr<T>() + (t - 1) * count : c0.data_ptr<T>();
      const T* dc_data = dc.data_ptr<T>();
      T* dc_out = dc_next.data_ptr<T>();
      T* out = grad_gates.data_ptr<T>() + t * 4 * count;
      for (int64_t b = 0; b < batch; ++b) {
        const T *i = act + b * 4 * hidden, *f = i + hidden, *g = f + hidden, *o = g + hidden;
        T* d = out + b * 4 * hidden;
        for (int64_t j = 0, k = b * hidden; j < hidden; ++j, ++k) {
          d[j] = g[j] * i[j] * (T(1) - i[j]) * dc_data[k];
          d[hidden + j] = c_prev[k] * f[j] * (T(1) - f[j]) * dc_data[k];
          d[2 * hidden + j] = i[j] * (T(1) - g[j] * g[j]) * dc_data[k];
          d[3 * hidden + j] = tanh_c[k] * o[j] * (T(1) - o[j]) * dh_data[k];
          dc_out[k] = dc_data[k] * f[j];
        }
      }
      at::mm_out(dh_next, grad_gates[t], w_hh_t);
    }
  });
  return {grad_gates, dh_next, dc_next};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.def("sample_steps", &sample_steps, "Sampling steps of a plain-LSTM SketchRNN decoder");
  module.def("lstm_backward", &lstm_backward, "Backward recurrence of LSTMSequence");
}
