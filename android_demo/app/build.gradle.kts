import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
  alias(libs.plugins.android.application)
  alias(libs.plugins.kotlin.android)
}

android {
  namespace = "dev.tfqmixed.demo"
  compileSdk = libs.versions.compileSdk.get().toInt()

  defaultConfig {
    applicationId = "dev.tfqmixed.demo"
    minSdk = libs.versions.minSdk.get().toInt()
    targetSdk = libs.versions.targetSdk.get().toInt()
    versionCode = 1
    versionName = "0.1"
  }

  buildTypes {
    release {
      isMinifyEnabled = false
    }
  }

  compileOptions {
    sourceCompatibility = JavaVersion.toVersion(libs.versions.jdk.get())
    targetCompatibility = JavaVersion.toVersion(libs.versions.jdk.get())
  }

  // Keep model.tflite uncompressed in the APK so FileUtil.loadMappedFile can memory-map it.
  androidResources {
    noCompress += "tflite"
  }
}

kotlin {
  compilerOptions { jvmTarget.set(JvmTarget.fromTarget(libs.versions.jdk.get())) }
}

dependencies {
  implementation(project(":core"))
  implementation(libs.litert)
  implementation(libs.litert.gpu)
  implementation(libs.litert.gpu.api)
  implementation(libs.litert.support)
}
