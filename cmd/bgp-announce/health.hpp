// Health checks run on their own threads (a command, a TCP connect, an HTTP GET) and
// report each result; rise/fall counting is done by the caller.
#pragma once
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "config.hpp"

namespace bgp_announce {

class HealthChecker {
public:
    // `report(ok, detail)` is called from the checker thread after every check.
    HealthChecker(HealthCheck hc, std::function<void(bool, std::string)> report);
    ~HealthChecker();
    HealthChecker(const HealthChecker&) = delete;
    HealthChecker& operator=(const HealthChecker&) = delete;

    // One check, blocking up to the timeout. Public for tests.
    static std::pair<bool, std::string> check_once(const HealthCheck& hc);

private:
    void run();
    HealthCheck hc_;
    std::function<void(bool, std::string)> report_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread t_;
};

}  // namespace bgp_announce
