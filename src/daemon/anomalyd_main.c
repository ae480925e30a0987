/* anomalyd: thin main; everything lives in the library. */
#include "anomalyd/daemon.h"

int main(int argc, char **argv) { return ad_daemon_main(argc, argv); }
