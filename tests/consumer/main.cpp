// Downstream smoke test: built against an installed xgrad via
// find_package(xgrad CONFIG REQUIRED) + target_link_libraries(... xgrad::xgrad).
#include <xgrad/xgrad.hpp>

#include <iostream>

int main()
{
    auto x = xg::randn({3, 4}).requires_grad_();
    auto y = (x * x).sum();
    y.backward();

    if (xg::allclose(x.grad(), x * 2.0)) {
        std::cout << "consumer ok" << std::endl;
        return 0;
    }
    std::cerr << "consumer FAILED: d(sum(x*x))/dx != 2*x" << std::endl;
    return 1;
}
