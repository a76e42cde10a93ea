#include "line_pool.hpp"

#include <algorithm>

namespace bgp_announce {

namespace mrt = edge::mrt;

LinePool::LinePool(unsigned workers, Write write, Warn warn)
    : write_(std::move(write)), warn_(std::move(warn)), max_in_flight_(4 * size_t(std::max(workers, 1u)) + 4) {
    fmts_.resize(size_t(std::max(workers, 1u)) + 1);
    try {
        for (unsigned w = 1; w < fmts_.size(); ++w) threads_.emplace_back([this, w] { work(w); });
    } catch (...) {
        stop();
        throw;
    }
}

LinePool::~LinePool() { stop(); }

void LinePool::stop() {
    {
        std::lock_guard lk(mu_);
        stopping_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
}

const LinePool::Peer* LinePool::peer(const mrt::Bgp4mp& line, std::string where) {
    Peer& p = peers_.emplace_back(Peer{line, std::move(where)});
    p.line.msg = {};
    return &p;
}

std::unique_ptr<LinePool::Batch> LinePool::fresh() {
    {
        std::lock_guard lk(mu_);
        if (!spare_.empty()) {
            auto b = std::move(spare_.back());
            spare_.pop_back();
            return b;
        }
    }
    auto b = std::make_unique<Batch>();
    b->items.reserve(batch_items);
    b->text.reserve(batch_items * 128);  // about a batch's lines: no regrowing
    return b;
}

void LinePool::add(const Peer* p, int64_t ts_us, std::span<const uint8_t> msg, bool stable) {
    if (!cur_) cur_ = fresh();
    Item it{p, nullptr, 0, uint32_t(msg.size()), ts_us};
    if (stable) {
        it.p = msg.data();
    } else {
        it.off = uint32_t(cur_->bytes.size());
        cur_->bytes.insert(cur_->bytes.end(), msg.begin(), msg.end());
    }
    cur_->items.push_back(it);
    if (cur_->items.size() >= batch_items || cur_->bytes.size() >= batch_bytes) seal();
}

void LinePool::warn(const std::string& where, const std::string& what) {
    if (!cur_) cur_ = fresh();
    cur_->notes.push_back(Note{cur_->items.size(), where, what});
}

void LinePool::seal() {
    std::unique_lock lk(mu_);
    if (error_) std::rethrow_exception(error_);  // stop reading: the output is broken
    cur_->seq = next_seq_++;
    pending_.push_back(std::move(cur_));
    ++in_flight_;
    work_cv_.notify_one();
    // Far enough ahead of the workers: format the oldest waiting batch here (reading on
    // is this thread's first job: the workers starve while it formats), or wait.
    while (pending_.size() >= 4 * (fmts_.size() - 1) || in_flight_ >= max_in_flight_) {
        help_or_wait(lk);
    }
}

void LinePool::help_or_wait(std::unique_lock<std::mutex>& lk) {
    if (pending_.empty()) {
        done_cv_.wait(lk);
        return;
    }
    auto b = std::move(pending_.front());
    pending_.pop_front();
    lk.unlock();
    process(std::move(b), fmts_[0]);
    lk.lock();
}

void LinePool::finish() {
    if (cur_ && (!cur_->items.empty() || !cur_->notes.empty())) {
        std::lock_guard lk(mu_);
        cur_->seq = next_seq_++;
        pending_.push_back(std::move(cur_));
        ++in_flight_;
    }
    work_cv_.notify_all();
    std::unique_lock lk(mu_);
    while (in_flight_) {
        help_or_wait(lk);
    }
    if (error_) std::rethrow_exception(error_);
}

void LinePool::process(std::unique_ptr<Batch> b, mrt::BgpdumpFormatter& f) {
    std::exception_ptr failed;
    try {
        format(*b, f);
    } catch (...) {
        failed = std::current_exception();
    }
    std::unique_lock lk(mu_);
    if (failed && !error_) error_ = failed;
    ready_.emplace(b->seq, std::move(b));
    if (writing_) return;  // that thread writes this batch too when its turn comes
    writing_ = true;
    for (auto it = ready_.find(written_); it != ready_.end(); it = ready_.find(written_)) {
        std::unique_ptr<Batch> w = std::move(it->second);
        ready_.erase(it);
        if (!error_ && !stopping_) {  // after a failure the rest is dropped
            lk.unlock();
            try {
                // The reader's warnings and the formatter's, in the order one thread would give.
                size_t i = 0, j = 0;
                while (i < w->notes.size() || j < w->fmt_notes.size()) {
                    bool mine = j == w->fmt_notes.size() || (i < w->notes.size() && w->notes[i].before <= w->fmt_notes[j].before);
                    const Note& n = mine ? w->notes[i++] : w->fmt_notes[j++];
                    warn_(n.where, n.what);
                }
                if (!w->text.empty()) write_(w->text.data(), w->text.size());
            } catch (...) {
                failed = std::current_exception();
            }
            lk.lock();
            if (failed && !error_) error_ = failed;
        }
        w->reset();
        spare_.push_back(std::move(w));
        ++written_;
        --in_flight_;
        done_cv_.notify_all();
    }
    writing_ = false;
}

void LinePool::format(Batch& b, mrt::BgpdumpFormatter& f) {
    mrt::Header h;
    h.type = mrt::type_bgp4mp_et;
    mrt::Bgp4mp line;
    const Peer* cur = nullptr;
    for (size_t i = 0; i < b.items.size(); ++i) {
        const Item& it = b.items[i];
        if (it.peer != cur) {
            cur = it.peer;
            line = cur->line;
        }
        h.timestamp = uint32_t(it.ts_us / 1000000);
        h.microseconds = uint32_t(it.ts_us % 1000000);
        line.msg = {it.p ? it.p : b.bytes.data() + it.off, it.len};
        f.bgp4mp(h, line, b.text);
        if (!f.warnings.empty()) {
            for (auto& w : f.warnings) b.fmt_notes.push_back(Note{i, cur->where, std::move(w)});
            f.warnings.clear();
        }
    }
}

void LinePool::work(size_t w) {
    for (;;) {
        std::unique_ptr<Batch> b;
        {
            std::unique_lock lk(mu_);
            work_cv_.wait(lk, [&] { return stopping_ || !pending_.empty(); });
            if (stopping_) return;
            b = std::move(pending_.front());
            pending_.pop_front();
        }
        process(std::move(b), fmts_[w]);
    }
}

}  // namespace bgp_announce
