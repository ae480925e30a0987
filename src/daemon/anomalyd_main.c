/* anomalyd: thin main; everything lives in the library. */
#include "anomalyd/daemon.h"
#include "anomalyd/util.h"

int main(int argc, char **argv)
{
    ad_reexec_with_passive_openmp(argv);
    return ad_daemon_main(argc, argv);
}
