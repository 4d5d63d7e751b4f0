/* Test driver for an export with a stored feature encoding and class
 * names: reads rows of little-endian float32 features from a file and
 * prints, per row, the encoded bytes in hex, the class and its name.
 * Built with -DDRIVER_HEADER='"name.h"' and the name's functions and
 * macros as DRIVER_ENCODE, DRIVER_PREDICT, DRIVER_NAMES, DRIVER_FEATURES,
 * DRIVER_INPUTS.
 */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include DRIVER_HEADER

int main(int argc, char **argv)
{
    static float features[DRIVER_FEATURES];
    static uint8_t encoded[DRIVER_INPUTS];
    unsigned char raw[4 * DRIVER_FEATURES];
    FILE *f;
    uint32_t j;
    int c;

    if (argc != 2 || (f = fopen(argv[1], "rb")) == NULL) {
        fprintf(stderr, "usage: driver FEATURES.f32\n");
        return 2;
    }
    while (fread(raw, 1, sizeof raw, f) == sizeof raw) {
        for (j = 0; j < DRIVER_FEATURES; ++j) {
            uint32_t bits = (uint32_t)raw[4 * j] | (uint32_t)raw[4 * j + 1] << 8
                | (uint32_t)raw[4 * j + 2] << 16 | (uint32_t)raw[4 * j + 3] << 24;
            memcpy(&features[j], &bits, sizeof bits);
        }
        DRIVER_ENCODE(features, encoded);
        for (j = 0; j < DRIVER_INPUTS; ++j) {
            printf("%02x", encoded[j]);
        }
        c = DRIVER_PREDICT(encoded, NULL);
        printf(" %d %s\n", c, DRIVER_NAMES[c]);
    }
    fclose(f);
    return 0;
}
