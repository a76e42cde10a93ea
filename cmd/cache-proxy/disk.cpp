#include "disk.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "cli/error.hpp"

namespace cache_proxy {

namespace {

constexpr char k_magic[8] = {'C', 'P', 'D', 'I', 'S', 'K', '0', '1'};
constexpr size_t k_trailer = 24;                     // u64 body, u64 meta, magic
constexpr uint64_t k_max_queue_bytes = 256ull << 20;  // writer backlog before spills are dropped

uint64_t fnv1a(std::string_view s, uint64_t h = 0xcbf29ce484222325ULL) {
    for (unsigned char c : s) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    return h;
}

std::string file_name(const std::string& key, const std::vector<std::pair<std::string, std::string>>& vary) {
    uint64_t h = fnv1a(key);
    for (auto& [n, v] : vary) {
        h = fnv1a(std::string_view("\0", 1), h);
        h = fnv1a(n, h);
        h = fnv1a(std::string_view("\0", 1), h);
        h = fnv1a(v, h);
    }
    return fmt::format("{:016x}.obj", h);
}

void put_u64(std::string& o, uint64_t v) {
    for (int i = 0; i < 8; i++) o.push_back(static_cast<char>(v >> (8 * i)));
}
void put_str(std::string& o, std::string_view s) {
    put_u64(o, s.size());
    o.append(s);
}

struct Reader {
    std::string_view d;
    bool ok = true;
    uint64_t u64() {
        if (d.size() < 8) {
            ok = false;
            return 0;
        }
        uint64_t v = 0;
        for (int i = 0; i < 8; i++) v |= static_cast<uint64_t>(static_cast<unsigned char>(d[static_cast<size_t>(i)])) << (8 * i);
        d.remove_prefix(8);
        return v;
    }
    std::string str() {
        uint64_t n = u64();
        if (!ok || n > d.size()) {
            ok = false;
            return {};
        }
        std::string s(d.substr(0, n));
        d.remove_prefix(n);
        return s;
    }
};

bool write_all(int fd, const char* p, size_t n) {
    while (n) {
        ssize_t k = ::write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k;
        n -= static_cast<size_t>(k);
    }
    return true;
}

bool read_at(int fd, char* p, size_t n, off_t off) {
    while (n) {
        ssize_t k = ::pread(fd, p, n, off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k;
        n -= static_cast<size_t>(k);
        off += k;
    }
    return true;
}

// The metadata block of a file: (body size, parsed fields). False when it is not ours.
struct Meta {
    uint64_t body = 0;
    std::string key, head, etag, last_modified;
    std::vector<std::pair<std::string, std::string>> vary;
    uint64_t lines_begin = 0, lines_end = 0;
    int status = 200;
    int64_t age = 0, request_time = 0, response_time = 0;
};

bool read_meta(int fd, Meta& m) {
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(k_trailer)) return false;
    char t[k_trailer];
    if (!read_at(fd, t, k_trailer, st.st_size - static_cast<off_t>(k_trailer))) return false;
    if (std::memcmp(t + 16, k_magic, 8) != 0) return false;
    Reader tr{std::string_view(t, 16)};
    uint64_t body = tr.u64(), meta = tr.u64();
    if (body + meta + k_trailer != static_cast<uint64_t>(st.st_size) || meta > (16u << 20)) return false;
    std::string buf(meta, '\0');
    if (!read_at(fd, buf.data(), meta, static_cast<off_t>(body))) return false;
    Reader r{buf};
    m.body = body;
    m.key = r.str();
    uint64_t nv = r.u64();
    for (uint64_t i = 0; r.ok && i < nv && i < 64; i++) {
        std::string n = r.str();
        std::string v = r.str();
        m.vary.emplace_back(std::move(n), std::move(v));
    }
    m.head = r.str();
    m.lines_begin = r.u64();
    m.lines_end = r.u64();
    m.status = static_cast<int>(r.u64());
    m.age = static_cast<int64_t>(r.u64());
    m.request_time = static_cast<int64_t>(r.u64());
    m.response_time = static_cast<int64_t>(r.u64());
    m.etag = r.str();
    m.last_modified = r.str();
    return r.ok && m.lines_begin <= m.lines_end && m.lines_end <= m.head.size();
}

}  // namespace

DiskTier::DiskTier(std::string dir, uint64_t limit) : dir_(std::move(dir)), limit_(limit) {
    if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST)
        edge::usage_error("--disk-cache {}: cannot create the directory: {}", dir_, std::strerror(errno));
    std::string probe = dir_ + "/.probe";
    int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) edge::usage_error("--disk-cache {}: cannot write there: {}", dir_, std::strerror(errno));
    ::close(fd);
    ::unlink(probe.c_str());
    scan();
    thread_ = std::thread([this] { writer(); });
}

DiskTier::~DiskTier() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void DiskTier::scan() {
    DIR* d = ::opendir(dir_.c_str());
    if (!d) edge::failure("--disk-cache {}: cannot read the directory: {}", dir_, std::strerror(errno));
    struct Found {
        int64_t mtime;
        Item item;
    };
    std::vector<Found> found;
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        std::string path = dir_ + "/" + n;
        if (n.size() > 4 && n.compare(n.size() - 4, 4, ".tmp") == 0) {
            ::unlink(path.c_str());  // an interrupted write
            continue;
        }
        if (n.size() != 20 || n.compare(16, 4, ".obj") != 0) continue;
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        Meta m;
        struct stat st {};
        bool ok = read_meta(fd, m) && fstat(fd, &st) == 0;
        ::close(fd);
        if (!ok) {
            ::unlink(path.c_str());  // not ours or damaged
            continue;
        }
        Item it;
        it.key = m.key;
        it.file = n;
        it.vary = m.vary;
        it.bytes = static_cast<uint64_t>(st.st_size);
        it.response_time = m.response_time;
        found.push_back({static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec, std::move(it)});
    }
    ::closedir(d);
    std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) { return a.mtime < b.mtime; });
    std::lock_guard lk(mu_);
    for (auto& f : found) add_locked(std::move(f.item));  // oldest first: the newest ends up in front
}

void DiskTier::drop_locked(Lru::iterator it) {
    auto& vs = index_[it->key];
    vs.erase(std::remove(vs.begin(), vs.end(), it), vs.end());
    if (vs.empty()) index_.erase(it->key);
    by_file_.erase(it->file);
    bytes_.fetch_sub(it->bytes, std::memory_order_relaxed);
    objects_.fetch_sub(1, std::memory_order_relaxed);
    lru_.erase(it);
}

void DiskTier::add_locked(Item item) {
    if (auto old = by_file_.find(item.file); old != by_file_.end()) drop_locked(old->second);  // replaced by rename
    lru_.push_front(std::move(item));
    auto it = lru_.begin();
    index_[it->key].push_back(it);
    by_file_[it->file] = it;
    bytes_.fetch_add(it->bytes, std::memory_order_relaxed);
    objects_.fetch_add(1, std::memory_order_relaxed);
    while (bytes_.load(std::memory_order_relaxed) > limit_ && lru_.size() > 1) {
        auto victim = std::prev(lru_.end());
        ::unlink((dir_ + "/" + victim->file).c_str());
        drop_locked(victim);
        evictions_.fetch_add(1, std::memory_order_relaxed);
    }
}

void DiskTier::spill(const std::string& key, const ObjectPtr& o) {
    if (!o) return;
    uint64_t size = o->charge();
    if (size > limit_) return;
    {
        std::lock_guard lk(mu_);
        // Already there (it was read back from this file): just make it recent again.
        if (auto f = by_file_.find(file_name(key, o->vary)); f != by_file_.end() && f->second->response_time == o->facts.response_time) {
            lru_.splice(lru_.begin(), lru_, f->second);
            return;
        }
        if (queued_bytes_ + size > k_max_queue_bytes || queue_.size() >= 4096) {
            dropped_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        queue_.emplace_back(key, o);
        queued_bytes_ += size;
    }
    cv_.notify_one();
}

bool DiskTier::write_file(const std::string& key, const Object& o, Item& item) {
    item.key = key;
    item.vary = o.vary;
    item.file = file_name(key, o.vary);
    item.response_time = o.facts.response_time;
    std::string path = dir_ + "/" + item.file, tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    bool ok = true;
    uint64_t body = o.body ? o.body->size : 0;
    if (o.body && o.body->fd >= 0) {
        std::vector<char> buf(256 * 1024);
        for (uint64_t off = 0; ok && off < body;) {
            size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), body - off));
            ok = read_at(o.body->fd, buf.data(), n, static_cast<off_t>(off)) && write_all(fd, buf.data(), n);
            off += n;
        }
    } else if (o.body) {
        ok = write_all(fd, o.body->data.data(), o.body->data.size());
    }
    std::string meta;
    put_str(meta, key);
    put_u64(meta, o.vary.size());
    for (auto& [n, v] : o.vary) {
        put_str(meta, n);
        put_str(meta, v);
    }
    put_str(meta, o.head);
    put_u64(meta, o.lines_begin);
    put_u64(meta, o.lines_end);
    put_u64(meta, static_cast<uint64_t>(o.status));
    put_u64(meta, static_cast<uint64_t>(o.facts.age));
    put_u64(meta, static_cast<uint64_t>(o.facts.request_time));
    put_u64(meta, static_cast<uint64_t>(o.facts.response_time));
    put_str(meta, o.etag);
    put_str(meta, o.last_modified);
    std::string trailer;
    put_u64(trailer, body);
    put_u64(trailer, meta.size());
    trailer.append(k_magic, 8);
    ok = ok && write_all(fd, meta.data(), meta.size()) && write_all(fd, trailer.data(), trailer.size());
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
        ::unlink(tmp.c_str());
        return false;
    }
    item.bytes = body + meta.size() + trailer.size();
    return true;
}

void DiskTier::writer() {
    std::unique_lock lk(mu_);
    for (;;) {
        cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) break;  // stopping with nothing left
        auto [key, o] = std::move(queue_.front());
        queue_.pop_front();
        queued_bytes_ -= std::min<uint64_t>(queued_bytes_, o->charge());
        busy_ = true;
        uint64_t gen = purges_;
        lk.unlock();
        Item item;
        bool ok = write_file(key, *o, item);
        lk.lock();
        busy_ = false;
        if (ok && gen != purges_) {  // purged or invalidated meanwhile: maybe this very object
            ::unlink((dir_ + "/" + item.file).c_str());
            if (auto f = by_file_.find(item.file); f != by_file_.end()) drop_locked(f->second);
            ok = false;
        }
        if (ok) {
            writes_.fetch_add(1, std::memory_order_relaxed);
            add_locked(std::move(item));
        }
        if (queue_.empty()) idle_cv_.notify_all();
        if (stop_ && queue_.empty()) break;
    }
    idle_cv_.notify_all();
}

void DiskTier::flush() {
    std::unique_lock lk(mu_);
    idle_cv_.wait_for(lk, std::chrono::seconds(10), [&] { return queue_.empty() && !busy_; });
}

ObjectPtr DiskTier::find(const std::string& key, const FieldLookup& fields) {
    std::string file;
    {
        std::lock_guard lk(mu_);
        // Evicted but not written yet: still in memory, in the queue.
        for (auto q = queue_.rbegin(); q != queue_.rend(); ++q) {
            if (q->first != key) continue;
            bool match = true;
            for (auto& [n, v] : q->second->vary)
                if (fields(n) != v) match = false;
            if (match) {
                hits_.fetch_add(1, std::memory_order_relaxed);
                return q->second;
            }
        }
        auto it = index_.find(key);
        if (it == index_.end()) return nullptr;
        for (auto li : it->second) {
            bool match = true;
            for (auto& [n, v] : li->vary)
                if (fields(n) != v) match = false;
            if (match) {
                file = li->file;
                lru_.splice(lru_.begin(), lru_, li);
                break;
            }
        }
    }
    if (file.empty()) return nullptr;
    std::string path = dir_ + "/" + file;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    Meta m;
    if (fd < 0 || !read_meta(fd, m) || m.key != key) {
        if (fd >= 0) ::close(fd);
        std::lock_guard lk(mu_);
        if (auto f = by_file_.find(file); f != by_file_.end()) {
            ::unlink(path.c_str());
            drop_locked(f->second);
        }
        return nullptr;
    }
    auto o = std::make_shared<Object>();
    o->head = std::move(m.head);
    o->lines_begin = m.lines_begin;
    o->lines_end = m.lines_end;
    o->status = m.status;
    o->etag = std::move(m.etag);
    o->last_modified = std::move(m.last_modified);
    o->vary = std::move(m.vary);
    o->facts.status = m.status;
    std::string_view lines(o->head.data() + o->lines_begin, o->lines_end - o->lines_begin);
    for (size_t pos = 0; pos < lines.size();) {
        size_t eol = lines.find("\r\n", pos);
        if (eol == std::string_view::npos) break;
        std::string_view line = lines.substr(pos, eol - pos);
        pos = eol + 2;
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view v = line.substr(colon + 1);
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
        o->facts.add_header(line.substr(0, colon), v);
    }
    o->facts.age = m.age;
    o->facts.request_time = m.request_time;
    o->facts.response_time = m.response_time;
    auto b = std::make_shared<Body>();
    b->size = m.body;
    if (m.body) b->fd = fd;  // sent with sendfile straight from the file
    else ::close(fd);
    o->body = std::move(b);
    hits_.fetch_add(1, std::memory_order_relaxed);
    return o;
}

bool DiskTier::remove(const std::string& key) {
    std::lock_guard lk(mu_);
    purges_++;
    bool any = false;
    for (auto q = queue_.begin(); q != queue_.end();) {
        if (q->first == key) {
            queued_bytes_ -= std::min<uint64_t>(queued_bytes_, q->second->charge());
            q = queue_.erase(q);
            any = true;
        } else {
            ++q;
        }
    }
    auto it = index_.find(key);
    if (it == index_.end()) return any;
    auto vs = it->second;
    for (auto li : vs) {
        ::unlink((dir_ + "/" + li->file).c_str());
        drop_locked(li);
    }
    return true;
}

std::vector<std::string> DiskTier::remove_prefix(std::string_view prefix) {
    std::vector<std::string> keys;
    {
        std::lock_guard lk(mu_);
        for (auto& [k, v] : index_)
            if (std::string_view(k).substr(0, prefix.size()) == prefix) keys.push_back(k);
        for (auto& q : queue_)
            if (std::string_view(q.first).substr(0, prefix.size()) == prefix) keys.push_back(q.first);
    }
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    std::vector<std::string> removed;
    for (auto& k : keys)
        if (remove(k)) removed.push_back(k);
    return removed;
}

}  // namespace cache_proxy
