#include "test_support.h"

void test_frame_vector(char **tok, int nt)
{
    (void)tok;
    (void)nt;
}

void test_proto(void) {}
