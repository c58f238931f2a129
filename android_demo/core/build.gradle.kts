// Plain Kotlin/JVM: the demo's logic (preprocessing, top-k, latency statistics), no Android
// dependency, so it compiles and its tests run on any JVM (`./gradlew :core:test`, or without
// Gradle: ../run_jvm_tests.sh).
import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
  `java-library`
  alias(libs.plugins.kotlin.jvm)
}

java {
  sourceCompatibility = JavaVersion.toVersion(libs.versions.jdk.get())
  targetCompatibility = JavaVersion.toVersion(libs.versions.jdk.get())
}

kotlin {
  compilerOptions { jvmTarget.set(JvmTarget.fromTarget(libs.versions.jdk.get())) }
}

dependencies {
  testImplementation(libs.junit)
}
