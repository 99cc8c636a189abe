/* Stands in for the macOS SDK's TargetConditionals.h so that scripts/test.sh can type-check the
 * crate for x86_64-apple-darwin on Linux: ring's C includes it to learn the Apple platform, and
 * the SDK is not available here. Only compiled for that check, never linked. */
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
