/* Pareto front and repeat statistics of jobs/pareto.h. */
#include "jobs/pareto.h"

#include <math.h>

void rcc_pareto_front(const double *x, const double *y, const bool *valid, int n, bool *front) {
  for (int i = 0; i < n; i++) {
    front[i] = valid[i];
    for (int j = 0; j < n && front[i]; j++)
      if (j != i && valid[j] && x[j] >= x[i] && y[j] >= y[i] && (x[j] > x[i] || y[j] > y[i]))
        front[i] = false;
  }
}

double rcc_t975(int df) {
  static const double t[30] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306,
                               2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
                               2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
                               2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
  if (df <= 30) return t[df - 1];
  return 1.95996 + 2.5 / df; /* t(40) = 2.021, t(60) = 2.000, t(120) = 1.980 */
}

void rcc_mean_std_ci(const double *v, int n, double *mean, double *std, double *ci95) {
  double sum = 0;
  for (int i = 0; i < n; i++)
    sum += v[i];
  *mean = sum / n;
  if (n < 2) {
    *std = *ci95 = NAN;
    return;
  }
  double ss = 0;
  for (int i = 0; i < n; i++)
    ss += (v[i] - *mean) * (v[i] - *mean);
  *std = sqrt(ss / (n - 1));
  *ci95 = rcc_t975(n - 1) * *std / sqrt((double)n);
}
