#pragma once
// StallBudget: how often the scheduler's forward passes may read prompt chunks beside running
// decodes. A pass that carries a chunk takes longer than one of decodes alone, and every decoding
// sequence waits for it; bounded at `ratio`, the decoding sequences' mean time per pass stays
// within ratio × a pass of decodes alone (time per output token while long prompts arrive), and
// prompts are read in the passes that the budget allows. Every pass that decodes earns ratio × a
// pass of decodes alone and spends its own time; the balance is capped at what one pass of
// decodes alone leaves, so time saved while no prompt waits is not spent later in a burst. Pure bookkeeping of measured times.

namespace deltainfer::engine {

class StallBudget {
 public:
  // ratio 0: no bound (every pass may read prompt tokens); else > 1. Throws InputError otherwise.
  explicit StallBudget(double ratio);

  // Whether the next pass may read prompt tokens beside its decodes.
  bool allows_prompt() const;
  // A pass ran: whether it decoded any sequence, whether it read prompt tokens, its seconds.
  void record(bool decoded, bool read_prompt, double seconds);

 private:
  double ratio_;
  double decode_pass_ = 0.0;  // seconds of a pass of decodes alone (moving average; 0: none yet)
  double balance_ = 0.0;      // seconds of stall the decoding sequences may still take
  // Passes with a prompt chunk before any pass of decodes alone was timed: charged once one is
  // (until then no further such pass is allowed).
  double unmeasured_seconds_ = 0.0;
  int unmeasured_passes_ = 0;
};

}  // namespace deltainfer::engine
